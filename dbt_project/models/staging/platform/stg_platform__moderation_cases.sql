with

source as (
    select * from {{ source('platform', 'moderation_cases') }}
),

renamed as (
    select
        id as moderation_case_id,
        tenant_id,
        lower(trim(target_type)) as target_type,
        target_id,
        lower(trim(reason)) as case_reason,
        lower(trim(decision)) as decision,
        moderator_id as moderator_user_id,
        created_at,
        decided_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
