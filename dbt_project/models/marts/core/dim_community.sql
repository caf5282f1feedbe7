with

communities as (
    select * from {{ ref('stg_platform__communities') }}
    where quarantine_reason is null
),

final as (
    select
        {{ surrogate_key(['community_id']) }} as community_key,
        community_id,
        tenant_id,
        owner_user_id,
        community_name,
        visibility,
        theme,
        max_members,
        primary_tag,
        is_metadata_malformed,
        created_at,
        archived_at,
        is_source_deleted
    from communities
)

select * from final
