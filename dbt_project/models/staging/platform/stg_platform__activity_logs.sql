with

source as (
    select * from {{ source('platform', 'activity_logs') }}
),

users as (
    select user_id from {{ ref('stg_platform__users') }}
),

tenants as (
    select tenant_id from {{ ref('stg_platform__tenants') }}
),

renamed as (
    select
        source.id as activity_id,
        source.tenant_id,
        source.user_id,
        source.course_id,
        lower(trim(source.activity_type)) as activity_type,
        source.occurred_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        -- Activity is extracted after users, so a user created in between can have activity in
        -- raw before it has a row: held back until its user (or tenant) lands.
        case when users.user_id is null or tenants.tenant_id is null then 'orphan' end
            as quarantine_reason
    from source
    left join users on source.user_id = users.user_id
    left join tenants on source.tenant_id = tenants.tenant_id
)

select * from renamed
