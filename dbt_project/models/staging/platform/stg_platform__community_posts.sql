with

source as (
    select * from {{ source('platform', 'community_posts') }}
),

communities as (
    select community_id from {{ ref('stg_platform__communities') }}
),

people as (
    select
        user_id,
        person_id
    from {{ ref('stg_platform__users') }}
),

renamed as (
    select
        source.id as community_post_id,
        source.community_id,
        source.author_id as author_user_id,
        people.person_id as author_person_id,
        source.title as post_title,
        length(source.body) as body_length,
        source.created_at,
        source.updated_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        -- Posts of hard-deleted communities stayed behind (no cascade in the source).
        case when communities.community_id is null or people.user_id is null then 'orphan' end
            as quarantine_reason
    from source
    left join communities on source.community_id = communities.community_id
    left join people on source.author_id = people.user_id
)

select * from renamed
