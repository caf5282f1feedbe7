-- One row per version of a person (SCD2). A person is the canonical (smallest) users.id of a
-- tenant + email_hash; duplicate accounts are folded into it and counted. The first version is
-- valid from the beginning of time and the current one until the end of time, so that every
-- fact finds the version valid when it happened (facts carry person_version_key).
-- Which accounts are canonical is read from staging as it is now, not from the snapshot: the
-- snapshot versions an account when its own updated_at moves, but when a canonical account
-- changes its email, the duplicates it had become people of their own without their rows
-- changing, and their snapshot rows keep the old person and quarantine. A canonical account's
-- person_id is its user_id.
with

canonical as (
    select user_id
    from {{ ref('stg_platform__users') }}
    where quarantine_reason is null
),

versions as (
    select
        snapshots.*,
        row_number() over (partition by snapshots.user_id order by snapshots.dbt_valid_from)
            as version_number
    from {{ ref('snap_platform__users') }} as snapshots
    inner join canonical on snapshots.user_id = canonical.user_id
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
        {{ surrogate_key(['versions.user_id']) }} as person_key,
        versions.user_id as person_id,
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
    inner join accounts on versions.user_id = accounts.person_id
)

select * from final
