with

source as (
    select * from {{ source('platform', 'assessment_attempts') }}
),

courses as (
    select
        course_id,
        tenant_id,
        quarantine_reason
    from {{ ref('stg_platform__courses') }}
),

people as (
    select
        user_id,
        person_id
    from {{ ref('stg_platform__users') }}
),

renamed as (
    select
        source.id as attempt_id,
        courses.tenant_id,
        source.user_id,
        people.person_id,
        source.course_id,
        source.score,
        source.max_score,
        source.attempted_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        case
            -- No foreign key in the source: attempts of courses that do not exist.
            when courses.course_id is null or people.user_id is null then 'orphan'
            when courses.quarantine_reason is not null then 'parent_quarantined'
        end as quarantine_reason
    from source
    left join courses on source.course_id = courses.course_id
    left join people on source.user_id = people.user_id
)

select * from renamed
