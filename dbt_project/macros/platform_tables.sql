{#- Every table the warehouse lands in raw: its staging model's key column, the column holding
    its tenant (none when the table has no tenant of its own), and its flags of kept-but-dirty rows (malformed JSON, tenant mismatch, unknown enum, orphan: a parent that does not exist) where it has them. -#}
{% macro platform_tables() -%}
    {{ return({
        'tenants': {'key': 'tenant_id', 'tenant': 'tenant_id', 'malformed': none},
        'users': {'key': 'user_id', 'tenant': 'tenant_id', 'malformed': none, 'unknown_enum': 'is_unknown_role', 'erased': 'id < 0'},
        'instructor_profiles': {'key': 'instructor_profile_id', 'tenant': 'tenant_id', 'malformed': none, 'erased': 'user_id < 0'},
        'courses': {'key': 'course_id', 'tenant': 'tenant_id', 'malformed': none, 'unknown_enum': 'is_unknown_status', 'erased': 'instructor_id < 0'},
        'ebooks': {'key': 'ebook_id', 'tenant': 'tenant_id', 'malformed': none, 'erased': 'instructor_id < 0'},
        'subscriptions': {'key': 'subscription_id', 'tenant': 'tenant_id', 'malformed': none, 'erased': 'user_id < 0'},
        'field_service_providers': {'key': 'provider_id', 'tenant': 'tenant_id', 'malformed': 'is_service_types_malformed', 'erased': 'user_id < 0'},
        'field_service_orders': {'key': 'order_id', 'tenant': 'tenant_id', 'malformed': 'is_metadata_malformed', 'erased': 'customer_id < 0'},
        'field_service_events': {'key': 'order_event_id', 'tenant': none, 'malformed': 'is_payload_malformed'},
        'enrollments': {'key': 'enrollment_id', 'tenant': 'tenant_id', 'malformed': none, 'tenant_mismatch': 'has_tenant_mismatch', 'erased': 'user_id < 0'},
        'payments': {'key': 'payment_id', 'tenant': 'tenant_id', 'malformed': none, 'tenant_mismatch': 'has_tenant_mismatch', 'erased': 'user_id < 0'},
        'refunds': {'key': 'refund_id', 'tenant': none, 'malformed': none},
        'payout_batches': {'key': 'payout_batch_id', 'tenant': none, 'malformed': none},
        'payouts': {'key': 'payout_id', 'tenant': 'tenant_id', 'malformed': none, 'orphan': 'has_missing_batch', 'erased': 'instructor_id < 0'},
        'communities': {'key': 'community_id', 'tenant': 'tenant_id', 'malformed': 'is_metadata_malformed', 'erased': 'owner_id < 0'},
        'community_members': {'key': 'community_member_id', 'tenant': none, 'malformed': none, 'erased': 'user_id < 0'},
        'community_posts': {'key': 'community_post_id', 'tenant': none, 'malformed': none, 'erased': 'author_id < 0'},
        'assessment_attempts': {'key': 'attempt_id', 'tenant': 'tenant_id', 'malformed': none, 'erased': 'user_id < 0'},
        'moderation_cases': {'key': 'moderation_case_id', 'tenant': 'tenant_id', 'malformed': none, 'erased': "moderator_id < 0 or (target_type = 'user' and target_id < 0)"},
        'domain_events': {'key': 'domain_event_id', 'tenant': none, 'malformed': 'is_payload_malformed'},
        'learning_paths': {'key': 'learning_path_id', 'tenant': 'tenant_id', 'malformed': none, 'orphan': 'has_missing_region'},
        'integrations': {'key': 'integration_id', 'tenant': 'tenant_id', 'malformed': none},
        'webhooks': {'key': 'webhook_id', 'tenant': 'tenant_id', 'malformed': none},
        'activity_logs': {'key': 'activity_id', 'tenant': 'tenant_id', 'malformed': none, 'erased': 'user_id < 0'},
    }) }}
{%- endmacro %}
