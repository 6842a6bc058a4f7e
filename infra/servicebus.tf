# The effects queues. Every queue the app triggers on has sessions (one writer per incident or per
# target resource at a time), duplicate detection (a message id is a stable hash of what it does, so
# a resend is dropped) and MaxDeliveryCount 10 (then the dead-letter queue, with the reason).

locals {
  # queue => what its session id is
  session_queues = {
    intake        = "correlation key: one writer folds signals into an incident"
    pages         = "incident"
    notifications = "incident"
    actions       = "target resource: two actions on one resource never run at once"
    pagerduty     = "incident: PagerDuty webhook deliveries applied in order"
    chatops       = "Slack channel: /dr commands and button presses finished after the 3 s answer"
  }
}

resource "azurerm_servicebus_namespace" "responder" {
  name                = local.names.service_bus
  resource_group_name = azurerm_resource_group.responder.name
  location            = azurerm_resource_group.responder.location

  sku                          = var.service_bus_sku
  capacity                     = var.service_bus_sku == "Premium" ? var.service_bus_premium_capacity : 0
  premium_messaging_partitions = var.service_bus_sku == "Premium" ? 1 : 0

  # Entra ID only: no SAS keys exist to leak, the app connects with its managed identity.
  local_auth_enabled  = false
  minimum_tls_version = "1.2"

  # The namespace's own identity (what customer-managed keys would use); the app does not use it.
  identity {
    type = "SystemAssigned"
  }

  tags = local.tags

  #checkov:skip=CKV_AZURE_201:A customer-managed key needs Premium and makes every message depend on a Key Vault key being reachable during the disaster; Microsoft-managed keys
  #checkov:skip=CKV_AZURE_199:Double encryption exists only with a customer-managed key (see CKV_AZURE_201)
  #checkov:skip=CKV_AZURE_204:No VNet in this deployment (and Standard has no private endpoints); SAS keys are off, so only Entra ID principals with a data role connect
}

resource "azurerm_servicebus_queue" "session" {
  for_each = local.session_queues

  name         = each.key
  namespace_id = azurerm_servicebus_namespace.responder.id

  requires_session                        = true
  requires_duplicate_detection            = true
  duplicate_detection_history_time_window = var.duplicate_detection_window
  lock_duration                           = var.queue_lock_duration
  max_delivery_count                      = var.queue_max_delivery_count
  dead_lettering_on_message_expiration    = true
  # A page never gives up: messages outlive any outage worth paging about, then dead-letter.
  default_message_ttl = "P14D"
}

# Messages the app itself decides are dead (a card that gave up, a poison PagerDuty event) go here,
# where `dr dead-letters` lists them and `dr replay` sends them again. No trigger reads it.
resource "azurerm_servicebus_queue" "deadletters" {
  name         = "deadletters"
  namespace_id = azurerm_servicebus_namespace.responder.id

  requires_session                     = false
  requires_duplicate_detection         = false
  lock_duration                        = var.queue_lock_duration
  max_delivery_count                   = var.queue_max_delivery_count
  dead_lettering_on_message_expiration = true
  default_message_ttl                  = "P30D"
}
