with

source as (
    select * from {{ source('platform', 'instructor_profiles') }}
),

users as (
    select
        user_id,
        tenant_id
    from {{ ref('stg_platform__users') }}
),

tenants as (
    select
        tenant_id,
        default_currency
    from {{ ref('stg_platform__tenants') }}
),

renamed as (
    select
        source.id as instructor_profile_id,
        source.user_id as instructor_id,
        users.tenant_id,
        source.account_id as payout_account_ref,
        source.revenue_share_pct,
        source.payout_currency as source_payout_currency,
        coalesce(source.payout_currency, tenants.default_currency) as payout_currency,
        source.payout_currency is null as is_payout_currency_defaulted,
        source.created_at,
        source.updated_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        case when users.user_id is null then 'orphan' end as quarantine_reason
    from source
    left join users on source.user_id = users.user_id
    left join tenants on users.tenant_id = tenants.tenant_id
)

select * from renamed
