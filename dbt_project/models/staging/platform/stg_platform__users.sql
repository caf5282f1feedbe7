with

source as (
    select * from {{ source('platform', 'users') }}
),

role_map as (
    select
        raw_value,
        normalized_value
    from {{ ref('enum_mappings') }}
    where enum_domain = 'user_role'
),

renamed as (
    select
        source.id as user_id,
        -- One person per tenant + email: the canonical id is the smallest users.id sharing them.
        min(source.id) over (partition by source.tenant_id, source.email_hash) as person_id,
        source.tenant_id,
        source.email_hash,
        source.role as source_role,
        coalesce(role_map.normalized_value, 'unknown') as user_role,
        role_map.normalized_value is null as is_unknown_role,
        source.country_code,
        source.birth_year,
        source.postal_prefix,
        source.marketing_consent as has_marketing_consent,
        source.created_at,
        source.updated_at,
        source.deleted_at,
        source.deleted_at is not null as is_soft_deleted,
        {{ new_york_to_utc('source.two_factor_last_verified_at') }} as two_factor_last_verified_at,
        source.legacy_imported_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id
    from source
    left join role_map on lower(trim(source.role)) = role_map.raw_value
),

flagged as (
    select
        *,
        user_id <> person_id as is_duplicate_person,
        case when user_id <> person_id then 'duplicate_person' end as quarantine_reason
    from renamed
)

select * from flagged
