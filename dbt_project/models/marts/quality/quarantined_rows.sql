-- Grain: one row per raw row that cannot be used downstream, with the reason: `orphan` (its
-- parent does not exist), `unknown_enum` (a status no mapping knows), `duplicate_person` (a
-- re-seeded account folded into its canonical person), `parent_quarantined`. tenant_id 0
-- means the row has no tenant of its own or its tenant cannot be resolved (e.g. an orphan).
{%- set tables = platform_tables() %}
with

{% for table_name, spec in tables.items() %}
    {{ table_name }} as (
        select
            '{{ table_name }}' as table_name,
            {{ spec.key }} as source_id,
            {% if spec.tenant %}coalesce({{ spec.tenant }}, 0){% else %}0{% endif %} as tenant_id,
            quarantine_reason,
            load_id
        from {{ ref('stg_platform__' ~ table_name) }}
        where quarantine_reason is not null
    ),
{% endfor %}

unioned as (
    {% for table_name in tables %}
        select * from {{ table_name }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        {{ surrogate_key(['table_name', 'source_id']) }} as quarantined_row_key,
        table_name,
        source_id,
        tenant_id,
        quarantine_reason,
        load_id
    from unioned
)

select * from final
