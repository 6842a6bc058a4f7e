# Event Grid system topics on what the responder watches, each subscribed to the Event Grid
# trigger (responders/events.py: eventgrid_trigger).
#
# Two phases: a subscription to a function is validated against the deployed function, so creating
# it fails until the code is published. Phase 1 creates the topics; phase 2
# (deploy_event_subscriptions = true) subscribes. A source can have only one system topic: where
# one exists already, subscribe to it instead of listing the source here.

locals {
  # resource id => what kind of topic it is and which event types come in ([] = every type)
  event_sources = merge(
    { for id in var.redis_cache_ids : id => { topic_type = "Microsoft.Cache.Redis", global = false, event_types = [] } },
    { for id in var.container_registry_ids : id => { topic_type = "Microsoft.ContainerRegistry.Registries", global = false, event_types = [] } },
    { for id in var.key_vault_ids : id => { topic_type = "Microsoft.KeyVault.vaults", global = false, event_types = [] } },
    { for id in var.aks_cluster_ids : id => { topic_type = "Microsoft.ContainerService.ManagedClusters", global = false, event_types = [] } },
    { for id in var.watched_resource_group_ids : id => { topic_type = "Microsoft.Resources.ResourceGroups", global = true, event_types = var.resource_group_event_types } },
    { for id in var.health_subscription_ids : id => { topic_type = "Microsoft.ResourceNotifications.HealthResources", global = true, event_types = [] } },
  )

  event_grid_function_id = "${azurerm_function_app_flex_consumption.responder.id}/functions/eventgrid_trigger"
}

resource "azurerm_eventgrid_system_topic" "source" {
  for_each = local.event_sources

  # Unique and valid whatever the source is called: its last id segment, cleaned, plus a hash.
  name                = "evgt-${substr(replace(lower(element(split("/", each.key), length(split("/", each.key)) - 1)), "/[^a-z0-9-]/", "-"), 0, 40)}-${substr(sha1(lower(each.key)), 0, 8)}"
  resource_group_name = azurerm_resource_group.responder.name
  location            = each.value.global ? "global" : lookup(var.event_source_locations, each.key, var.primary_region)
  source_resource_id  = each.key
  topic_type          = each.value.topic_type

  # Writes dead letters to the responder's storage with the responder's identity.
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.responder.id]
  }

  tags = local.tags
}

resource "azurerm_eventgrid_system_topic_event_subscription" "responder" {
  for_each = var.deploy_event_subscriptions ? local.event_sources : {}

  name                = "dr-responder"
  system_topic        = azurerm_eventgrid_system_topic.source[each.key].name
  resource_group_name = azurerm_resource_group.responder.name

  event_delivery_schema = "EventGridSchema"
  included_event_types  = length(each.value.event_types) > 0 ? each.value.event_types : null

  azure_function_endpoint {
    function_id          = local.event_grid_function_id
    max_events_per_batch = 1 # the trigger takes one event per invocation
  }

  # Retry for a day (the default), then keep what could not be delivered.
  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }

  dead_letter_identity {
    type                   = "UserAssigned"
    user_assigned_identity = azurerm_user_assigned_identity.responder.id
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.responder.id
    storage_blob_container_name = azurerm_storage_container.eventgrid_deadletters.name
  }
}
