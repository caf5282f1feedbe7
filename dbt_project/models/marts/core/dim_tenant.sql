with

tenants as (
    select * from {{ ref('stg_platform__tenants') }}
),

final as (
    select
        {{ surrogate_key(['tenant_id']) }} as tenant_key,
        tenant_id,
        tenant_name,
        tenant_slug,
        region,
        default_currency,
        reporting_timezone,
        created_at,
        is_source_deleted
    from tenants
)

select * from final
