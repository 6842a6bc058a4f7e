output "function_app_name" {
  description = "For `func azure functionapp publish` / `az functionapp deploy`."
  value       = azurerm_function_app_flex_consumption.responder.name
}

output "function_app_url" {
  description = "Base URL of the routes (`dr smoke --url`)."
  value       = "https://${azurerm_function_app_flex_consumption.responder.default_hostname}"
}

output "resource_group_name" {
  value = azurerm_resource_group.responder.name
}

output "identity_client_id" {
  description = "The responder's identity (AZURE_CLIENT_ID)."
  value       = azurerm_user_assigned_identity.responder.client_id
}

output "identity_principal_id" {
  description = "Object id of the identity: the User subject of the Kubernetes RoleBindings."
  value       = azurerm_user_assigned_identity.responder.principal_id
}

output "tables_endpoint" {
  value = azurerm_storage_account.responder.primary_table_endpoint
}

output "service_bus_namespace" {
  value = "${azurerm_servicebus_namespace.responder.name}.servicebus.windows.net"
}

output "key_vault_name" {
  value = azurerm_key_vault.responder.name
}

output "action_group_id" {
  description = "Name this in alert rules (phase 2)."
  value       = try(azurerm_monitor_action_group.responder[0].id, null)
}
