# Names, tags and the resource group. Every name carries a short hash of subscription, tenant and
# environment, so two deployments never collide on the globally unique names (storage, vault, app).

data "azurerm_client_config" "current" {}

locals {
  suffix = substr(sha1("${var.subscription_id}/${var.tenant}/${var.environment}"), 0, 6)
  stem   = "dr-${var.tenant}-${var.environment}"

  names = {
    resource_group = "rg-${local.stem}"
    identity       = "id-${local.stem}"
    storage        = "stdr${var.tenant}${var.environment}${local.suffix}" # <= 24, letters and digits
    key_vault      = "kv-${local.stem}-${local.suffix}"                   # <= 24
    service_bus    = "sb-${local.stem}-${local.suffix}"
    plan           = "asp-${local.stem}"
    function_app   = "func-${local.stem}-${local.suffix}" # <= 32: longer names can collide on the host id
    log_analytics  = "log-${local.stem}"
    app_insights   = "appi-${local.stem}"
    action_group   = "ag-${local.stem}"
  }

  tags = merge(var.tags, {
    app         = "dr-responder"
    tenant      = var.tenant
    environment = var.environment
  })
}

resource "azurerm_resource_group" "responder" {
  name     = local.names.resource_group
  location = var.secondary_region
  tags     = local.tags
}
