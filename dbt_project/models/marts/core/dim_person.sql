-- One row per version of a person (SCD2). A person is the canonical (smallest) users.id of a
-- tenant + email_hash; duplicate accounts are folded into it and counted. The first version is
-- valid from the beginning of time and the current one until the end of time, so that every
-- fact finds the version valid when it happened (facts carry person_version_key).
with

versions as (
    select
        *,
        row_number() over (partition by person_id order by dbt_valid_from) as version_number
    from {{ ref('snap_platform__users') }}
    where quarantine_reason is null
),

accounts as (
    select
        person_id,
        count(*) as account_count
    from {{ ref('stg_platform__users') }}
    group by person_id
),

final as (
    select
        versions.dbt_scd_id as person_version_key,
        {{ surrogate_key(['versions.person_id']) }} as person_key,
        versions.person_id,
        versions.tenant_id,
        versions.email_hash,
        versions.user_role,
        versions.is_unknown_role,
        versions.country_code,
        versions.birth_year,
        versions.has_marketing_consent,
        accounts.account_count,
        versions.created_at,
        versions.deleted_at,
        versions.is_soft_deleted,
        versions.is_source_deleted,
        versions.version_number,
        case
            when versions.version_number = 1 then cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }})
            else versions.dbt_valid_from
        end as valid_from,
        coalesce(versions.dbt_valid_to, cast('9999-12-31 00:00:00' as {{ dbt.type_timestamp() }})) as valid_to,
        versions.dbt_valid_to is null as is_current
    from versions
    inner join accounts on versions.person_id = accounts.person_id
)

select * from final
