# The responder's own state: Table Storage in a geo-redundant account in the secondary region, so the
# incident record survives the region it is about. Also the Flex deployment package container and
# the host's own blobs (timers' leases). No shared keys: everything reaches it with Entra ID.

resource "azurerm_storage_account" "responder" {
  name                = local.names.storage
  resource_group_name = azurerm_resource_group.responder.name
  location            = azurerm_resource_group.responder.location

  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = "RAGRS" # read access in the paired region while Microsoft fails over

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true
  local_user_enabled                = false
  sftp_enabled                      = false

  blob_properties {
    delete_retention_policy {
      days = 14
    }
    container_delete_retention_policy {
      days = 14
    }
  }

  sas_policy {
    expiration_period = "0.01:00:00"
  }

  tags = local.tags

  #checkov:skip=CKV_AZURE_59:No VNet in this deployment: Flex Consumption and Event Grid reach the account over its public endpoint. Shared keys are off, so only Entra ID principals holding a data role get in
  #checkov:skip=CKV2_AZURE_33:No private endpoint without a VNet (see CKV_AZURE_59)
  #checkov:skip=CKV2_AZURE_1:A customer-managed key would make the responder's own store depend on a Key Vault key being reachable in the disaster it responds to; Microsoft-managed keys plus infrastructure encryption
  #checkov:skip=CKV_AZURE_33:queue_properties was removed from azurerm_storage_account in azurerm 5 and no queue is used; storage logs go to Log Analytics through the diagnostic settings below
}

# Storage logs (read, write, delete) to Log Analytics. Storage Insights (what CKV2_AZURE_21 looks
# for) needs an account key, which this account does not accept.
resource "azurerm_monitor_diagnostic_setting" "storage" {
  for_each = toset(["blobServices", "tableServices"])

  name                       = "dr-responder-logs"
  target_resource_id         = "${azurerm_storage_account.responder.id}/${each.value}/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.responder.id

  enabled_log {
    category_group = "allLogs"
  }
}

# The Flex deployment package: `az functionapp deploy` / `func azure functionapp publish` upload here.
resource "azurerm_storage_container" "deployments" {
  name                  = "deployments"
  storage_account_id    = azurerm_storage_account.responder.id
  container_access_type = "private"

  #checkov:skip=CKV2_AZURE_21:Blob logs go through azurerm_monitor_diagnostic_setting.storage; Storage Insights needs a shared key, which the account refuses
}

# Events Event Grid could not deliver within its retry window (24 h) land here, not nowhere.
resource "azurerm_storage_container" "eventgrid_deadletters" {
  name                  = "eventgrid-deadletters"
  storage_account_id    = azurerm_storage_account.responder.id
  container_access_type = "private"

  #checkov:skip=CKV2_AZURE_21:Blob logs go through azurerm_monitor_diagnostic_setting.storage; Storage Insights needs a shared key, which the account refuses
}

# Tables over ARM: azurerm_storage_table always sets ACLs with a shared key, which this account
# refuses (hashicorp/terraform-provider-azurerm#32249). Keep the list in step with the store adapter.
resource "azapi_resource" "table" {
  for_each = var.tables

  type      = "Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01"
  name      = each.value
  parent_id = "${azurerm_storage_account.responder.id}/tableServices/default"
  body      = {}
}
