with

source as (
    select * from {{ source('platform', 'communities') }}
),

renamed as (
    select
        id as community_id,
        tenant_id,
        owner_id as owner_user_id,
        name as community_name,
        slug as community_slug,
        lower(trim(visibility)) as visibility,
        metadata as metadata_json,
        metadata is not null and not {{ json_is_valid('metadata') }} as is_metadata_malformed,
        {{ json_text('metadata', '$.theme') }} as theme,
        cast({{ json_text('metadata', '$.max_members') }} as {{ dbt.type_int() }}) as max_members,
        {{ json_text('metadata', '$.tags[0]') }} as primary_tag,
        created_at,
        archived_at,
        updated_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
