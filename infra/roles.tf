# Least privilege for the one identity: each role on exactly the resource it is needed on.

locals {
  principal_id = azurerm_user_assigned_identity.responder.principal_id
}

# ---- Its own resources ------------------------------------------------------------------

# The store (Table Storage data: read, write, create tables).
resource "azurerm_role_assignment" "storage_table_contributor" {
  scope                = azurerm_storage_account.responder.id
  role_definition_name = "Storage Table Data Contributor"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# The Functions host (its blobs and the timer's lease) and the Flex deployment package; Event Grid
# writes its dead letters with the same identity.
resource "azurerm_role_assignment" "storage_blob_owner" {
  scope                = azurerm_storage_account.responder.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "service_bus_sender" {
  scope                = azurerm_servicebus_namespace.responder.id
  role_definition_name = "Azure Service Bus Data Sender"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "service_bus_receiver" {
  scope                = azurerm_servicebus_namespace.responder.id
  role_definition_name = "Azure Service Bus Data Receiver"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# Key Vault references in the app settings.
resource "azurerm_role_assignment" "own_vault_secrets_user" {
  scope                = azurerm_key_vault.responder.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# Telemetry with Entra ID (local authentication is off on the Application Insights resource).
resource "azurerm_role_assignment" "metrics_publisher" {
  scope                = azurerm_application_insights.responder.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# ---- What the actions act on --------------------------------------------------------------

# redis.failover: force_reboot, linked-server delete, get.
resource "azurerm_role_assignment" "redis" {
  for_each = toset(var.redis_cache_ids)

  scope                = each.value
  role_definition_name = "Redis Cache Contributor"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# cosmosdb.failover / failback: offline region, failover priority change, get.
resource "azurerm_role_assignment" "cosmosdb" {
  for_each = toset(var.cosmosdb_account_ids)

  scope                = each.value
  role_definition_name = "Cosmos DB Operator"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# kubernetes.* and velero.restore: the cluster's server and CA only; what the identity may do inside
# the cluster is Kubernetes RBAC (infra/kubernetes/dr-responder-rbac.yaml).
resource "azurerm_role_assignment" "aks" {
  for_each = toset(var.aks_cluster_ids)

  scope                = each.value
  role_definition_name = "Azure Kubernetes Service Cluster User Role"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# keyvault.recover_secret: list deleted secrets, recover, get.
resource "azurerm_role_assignment" "key_vault" {
  for_each = toset(var.key_vault_ids)

  scope                = each.value
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# acr.import: no built-in role imports without also pushing and deleting.
resource "azurerm_role_definition" "acr_import" {
  count = length(var.container_registry_ids) > 0 ? 1 : 0

  name        = "DR Responder ACR Import (${var.tenant}-${var.environment})"
  scope       = "/subscriptions/${var.subscription_id}"
  description = "Import an image into a registry (az acr import) and read the registry."

  permissions {
    actions = [
      "Microsoft.ContainerRegistry/registries/read",
      "Microsoft.ContainerRegistry/registries/importImage/action",
    ]
  }

  assignable_scopes = var.container_registry_ids
}

resource "azurerm_role_assignment" "acr_import" {
  for_each = toset(var.container_registry_ids)

  scope              = each.value
  role_definition_id = azurerm_role_definition.acr_import[0].role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}

# The registry an image is imported from: read it (the precondition) and pull from it.
resource "azurerm_role_definition" "acr_import_source" {
  count = length(var.container_registry_source_ids) > 0 ? 1 : 0

  name        = "DR Responder ACR Import Source (${var.tenant}-${var.environment})"
  scope       = "/subscriptions/${var.subscription_id}"
  description = "Read a registry and pull from it, as the source of an image import."

  permissions {
    actions = [
      "Microsoft.ContainerRegistry/registries/read",
      "Microsoft.ContainerRegistry/registries/pull/read",
    ]
  }

  assignable_scopes = var.container_registry_source_ids
}

resource "azurerm_role_assignment" "acr_import_source" {
  for_each = toset(var.container_registry_source_ids)

  scope              = each.value
  role_definition_id = azurerm_role_definition.acr_import_source[0].role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}
