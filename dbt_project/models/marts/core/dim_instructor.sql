-- One row per version of an instructor's profile (SCD2 on revenue_share_pct and payout
-- currency). The first version is valid from the beginning of time so that sales made before
-- the profile's last update still find their rate; the current one until the end of time.
with

versions as (
    select * from {{ ref('snap_platform__instructor_profiles') }}
    where quarantine_reason is null
),

ranked as (
    select
        *,
        row_number() over (partition by instructor_id order by dbt_valid_from) as version_number
    from versions
),

final as (
    select
        dbt_scd_id as instructor_version_key,
        {{ surrogate_key(['instructor_id']) }} as instructor_key,
        instructor_id,
        instructor_profile_id,
        tenant_id,
        revenue_share_pct,
        payout_currency,
        is_payout_currency_defaulted,
        version_number,
        case
            when version_number = 1 then cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }}) else dbt_valid_from
        end
            as valid_from,
        coalesce(dbt_valid_to, cast('9999-12-31 00:00:00' as {{ dbt.type_timestamp() }})) as valid_to,
        dbt_valid_to is null as is_current
    from ranked
)

select * from final
