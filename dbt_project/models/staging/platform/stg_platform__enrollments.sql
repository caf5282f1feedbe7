with

source as (
    select * from {{ source('platform', 'enrollments') }}
),

people as (
    select
        user_id,
        person_id,
        tenant_id
    from {{ ref('stg_platform__users') }}
),

courses as (
    select
        course_id,
        quarantine_reason
    from {{ ref('stg_platform__courses') }}
),

status_map as (
    select
        raw_value,
        normalized_value
    from {{ ref('enum_mappings') }}
    where enum_domain = 'enrollment_status'
),

renamed as (
    select
        source.id as enrollment_id,
        source.tenant_id,
        source.user_id,
        people.person_id,
        coalesce(source.tenant_id <> people.tenant_id, false) as has_tenant_mismatch,
        source.course_id,
        source.status as source_status,
        status_map.normalized_value as enrollment_status,
        nullif(lower(trim(source.acquisition_channel)), '') as acquisition_channel,
        source.progress_pct,
        source.enrolled_at,
        source.completed_at,
        source.created_at,
        -- Not bumped when progress changes (stale cursor): never use it to detect change.
        source.updated_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        case
            when status_map.normalized_value is null then 'unknown_enum'
            when courses.course_id is null or people.user_id is null then 'orphan'
            when courses.quarantine_reason is not null then 'parent_quarantined'
        end as quarantine_reason
    from source
    left join people on source.user_id = people.user_id
    left join courses on source.course_id = courses.course_id
    left join status_map on lower(trim(source.status)) = status_map.raw_value
)

select * from renamed
