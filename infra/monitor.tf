# Logs and telemetry (workspace-based Application Insights, Entra ID ingestion only), and the action
# group Azure Monitor alert rules use to reach the responder.

resource "azurerm_log_analytics_workspace" "responder" {
  name                = local.names.log_analytics
  resource_group_name = azurerm_resource_group.responder.name
  location            = azurerm_resource_group.responder.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "responder" {
  name                = local.names.app_insights
  resource_group_name = azurerm_resource_group.responder.name
  location            = azurerm_resource_group.responder.location
  workspace_id        = azurerm_log_analytics_workspace.responder.id
  application_type    = "web"
  # Telemetry is sent with the identity's token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), not
  # the instrumentation key alone.
  local_authentication_enabled = false
  tags                         = local.tags
}

locals {
  # The key the action group calls /api/alerts with: given, or the app's default function key.
  alerts_function_key = var.deploy_action_group ? coalesce(
    var.alerts_function_key, try(data.azurerm_function_app_host_keys.responder[0].default_function_key, null)
  ) : null
}

# Read after phase 1: the host creates its keys when it first starts.
data "azurerm_function_app_host_keys" "responder" {
  count = var.deploy_action_group && var.alerts_function_key == null ? 1 : 0

  name                = azurerm_function_app_flex_consumption.responder.name
  resource_group_name = azurerm_resource_group.responder.name
}

# Alert rules name this action group; it posts the common alert schema that /api/alerts parses.
resource "azurerm_monitor_action_group" "responder" {
  count = var.deploy_action_group ? 1 : 0

  name                = local.names.action_group
  resource_group_name = azurerm_resource_group.responder.name
  short_name          = "dr-${substr(var.tenant, 0, 9)}" # at most 12 characters
  location            = "global"

  webhook_receiver {
    name                    = "dr-responder-alerts"
    service_uri             = "https://${azurerm_function_app_flex_consumption.responder.default_hostname}/api/alerts?code=${local.alerts_function_key}"
    use_common_alert_schema = true
  }

  tags = local.tags
}
