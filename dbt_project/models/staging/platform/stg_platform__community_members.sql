with

source as (
    select * from {{ source('platform', 'community_members') }}
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
        source.id as community_member_id,
        source.community_id,
        source.user_id,
        people.person_id,
        lower(trim(source.role)) as member_role,
        source.joined_at,
        source.left_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        case when communities.community_id is null or people.user_id is null then 'orphan' end
            as quarantine_reason
    from source
    left join communities on source.community_id = communities.community_id
    left join people on source.user_id = people.user_id
)

select * from renamed
