# The responder's one user-assigned identity: the app's storage, Service Bus, App Insights and every
# action run as it. Its roles, each on exactly the resource it touches, are in roles.tf.

resource "azurerm_user_assigned_identity" "responder" {
  name                = local.names.identity
  resource_group_name = azurerm_resource_group.responder.name
  location            = azurerm_resource_group.responder.location
  tags                = local.tags
}
