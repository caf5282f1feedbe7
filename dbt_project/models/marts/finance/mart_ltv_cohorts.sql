-- Grain: tenant x cohort_month (month of the first revenue payment, tenant time zone).
-- Averages and medians use mature learners only (as-of >= first_paid_at + N days); every
-- average also stores its numerator (sum) and denominator (mature learners).
with

learners as (
    select * from {{ ref('mart_learner_ltv') }}
),

cohorts as (
    select
        tenant_id,
        cohort_month,
        count(*) as cohort_size,
        {%- for n in [30, 90, 365] %}
            count(case when is_mature_{{ n }} then 1 end) as mature_learners_{{ n }},
            sum(case when is_mature_{{ n }} then ltv_{{ n }}_usd else 0 end) as ltv_{{ n }}_mature_sum_usd,
            {{ median('case when is_mature_' ~ n ~ ' then ltv_' ~ n ~ '_usd end') }} as median_ltv_{{ n }}_usd,
        {%- endfor %}
        max(as_of_at) as as_of_at
    from learners
    group by tenant_id, cohort_month
),

final as (
    select
        tenant_id,
        cohort_month,
        cohort_size,
        {%- for n in [30, 90, 365] %}
            mature_learners_{{ n }},
            ltv_{{ n }}_mature_sum_usd,
            case
                when
                    mature_learners_{{ n }} > 0
                    then cast(ltv_{{ n }}_mature_sum_usd as {{ type_double() }}) / mature_learners_{{ n }}
            end as avg_ltv_{{ n }}_usd,
            median_ltv_{{ n }}_usd,
        {%- endfor %}
        as_of_at
    from cohorts
)

select * from final
