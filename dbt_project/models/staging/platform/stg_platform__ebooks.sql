with

source as (
    select * from {{ source('platform', 'ebooks') }}
),

tenants as (
    select
        tenant_id,
        default_currency
    from {{ ref('stg_platform__tenants') }}
),

renamed as (
    select
        source.id as ebook_id,
        source.tenant_id,
        source.instructor_id,
        source.title as ebook_title,
        source.price_amount,
        coalesce(source.currency, tenants.default_currency) as currency_code,
        source.currency is null as is_currency_defaulted,
        source.published_at,
        source.created_at,
        source.updated_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
    left join tenants on source.tenant_id = tenants.tenant_id
)

select * from renamed
