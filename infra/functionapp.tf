# The Function App: Flex Consumption (FC1), Python 3.11, in the secondary region. Identity-based
# connections only: no key or connection string in its settings.

resource "azurerm_service_plan" "responder" {
  name                = local.names.plan
  resource_group_name = azurerm_resource_group.responder.name
  location            = azurerm_resource_group.responder.location
  os_type             = "Linux"
  sku_name            = "FC1"
  # Instances spread over the secondary region's zones (where it has zones: see zone_redundant).
  zone_balancing_enabled = var.zone_redundant
  tags                   = local.tags

  #checkov:skip=CKV_AZURE_212:worker_count does not apply to Flex Consumption, which scales per function group; always_ready keeps an HTTP instance warm
}

locals {
  identity_client_id = azurerm_user_assigned_identity.responder.client_id

  app_settings = merge(var.app_settings, local.secret_references, {
    # Python <= 3.12 otherwise runs the worker's own azure-functions, not requirements.txt's.
    PYTHON_ISOLATE_WORKER_DEPENDENCIES = "1"

    # The host's storage, with the identity. The provider writes a key-based AzureWebJobsStorage
    # (with an empty key) even for identity auth; the empty value here replaces it, so the host
    # takes the __ settings (hashicorp/terraform-provider-azurerm#29149, #29693).
    AzureWebJobsStorage              = ""
    AzureWebJobsStorage__accountName = azurerm_storage_account.responder.name
    AzureWebJobsStorage__credential  = "managedidentity"
    AzureWebJobsStorage__clientId    = local.identity_client_id

    # The Service Bus triggers' connection (responders/*.py: connection="ServiceBusConnection").
    ServiceBusConnection__fullyQualifiedNamespace = "${azurerm_servicebus_namespace.responder.name}.servicebus.windows.net"
    ServiceBusConnection__credential              = "managedidentity"
    ServiceBusConnection__clientId                = local.identity_client_id

    # The responder's store, and the identity its Azure SDK clients (DefaultAzureCredential /
    # ManagedIdentityCredential) use for Table Storage, Service Bus and ARM.
    DR_TABLES_ENDPOINT = azurerm_storage_account.responder.primary_table_endpoint
    AZURE_CLIENT_ID    = local.identity_client_id

    # Telemetry with the identity's token: the resource refuses the instrumentation key alone.
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${local.identity_client_id};Authorization=AAD"
  })
}

resource "azurerm_function_app_flex_consumption" "responder" {
  name                = local.names.function_app
  resource_group_name = azurerm_resource_group.responder.name
  location            = azurerm_resource_group.responder.location
  service_plan_id     = azurerm_service_plan.responder.id

  runtime_name    = "python"
  runtime_version = "3.11"

  # The deployment package, read with the identity.
  storage_container_type            = "blobContainer"
  storage_container_endpoint        = "${azurerm_storage_account.responder.primary_blob_endpoint}${azurerm_storage_container.deployments.name}"
  storage_authentication_type       = "UserAssignedIdentity"
  storage_user_assigned_identity_id = azurerm_user_assigned_identity.responder.id

  maximum_instance_count = var.maximum_instance_count
  instance_memory_in_mb  = var.instance_memory_mb

  # One warm instance for the HTTP triggers: Azure Monitor and PagerDuty wait seconds, not minutes.
  dynamic "always_ready" {
    for_each = var.always_ready_http > 0 ? [var.always_ready_http] : []
    content {
      name           = "http"
      instance_count = always_ready.value
    }
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.responder.id]
  }

  https_only                                     = true
  webdeploy_publish_basic_authentication_enabled = false

  site_config {
    application_insights_connection_string = azurerm_application_insights.responder.connection_string
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"
    http2_enabled                          = true
    remote_debugging_enabled               = false
  }

  app_settings = local.app_settings

  tags = local.tags

  # The roles must exist before the host starts, or its first storage and Service Bus calls fail.
  depends_on = [
    azurerm_role_assignment.storage_blob_owner,
    azurerm_role_assignment.storage_table_contributor,
    azurerm_role_assignment.service_bus_sender,
    azurerm_role_assignment.service_bus_receiver,
    azurerm_role_assignment.own_vault_secrets_user,
    azurerm_role_assignment.metrics_publisher,
  ]
}

# Key Vault references resolve with the system identity unless keyVaultReferenceIdentity names
# another; azurerm does not expose it on Flex apps, so it is set over ARM (azurerm's own updates
# start from the site as read and keep it). The references re-resolve on the next restart
# (publishing the code is one).
resource "azapi_update_resource" "key_vault_reference_identity" {
  type        = "Microsoft.Web/sites@2024-04-01"
  resource_id = azurerm_function_app_flex_consumption.responder.id

  body = {
    properties = {
      keyVaultReferenceIdentity = azurerm_user_assigned_identity.responder.id
    }
  }
}
