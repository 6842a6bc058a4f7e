# The responder's secrets (PagerDuty and Slack), read by the app through Key Vault references.
#
# Values are write-only (value_wo, from ephemeral variables): Terraform sends them to Key Vault and
# keeps them neither in the plan nor in the state. A secret exists only when its integration is
# enabled, because an app setting whose reference cannot be resolved holds the literal
# "@Microsoft.KeyVault(...)" text, which the app would take for a routing key or a token.
# To rotate: pass the new values and raise secrets_version (or `az keyvault secret set` and leave
# Terraform alone; the versionless references pick up the newest version within a day, at once on
# a restart).

resource "azurerm_key_vault" "responder" {
  name                = local.names.key_vault
  resource_group_name = azurerm_resource_group.responder.name
  location            = azurerm_resource_group.responder.location
  tenant_id           = data.azurerm_client_config.current.tenant_id
  sku_name            = "standard"

  rbac_authorization_enabled = true
  purge_protection_enabled   = true
  soft_delete_retention_days = 90

  # Key Vault references from an app without VNet integration come over the public endpoint, and
  # App Service references are not among the trusted services a deny rule lets through.
  public_network_access_enabled = true
  network_acls {
    default_action = "Allow"
    bypass         = "AzureServices"
  }

  tags = local.tags

  #checkov:skip=CKV_AZURE_109:No VNet in this deployment: a default-deny firewall would stop the app's Key Vault references (App Service is not a trusted service for them); access is Azure RBAC only
  #checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109
  #checkov:skip=CKV2_AZURE_32:No private endpoint without a VNet (see CKV_AZURE_109)
}

# Who read or changed a secret, in Log Analytics.
resource "azurerm_monitor_diagnostic_setting" "key_vault" {
  name                       = "dr-responder-audit"
  target_resource_id         = azurerm_key_vault.responder.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.responder.id

  enabled_log {
    category_group = "audit"
  }
}

# Whoever runs Terraform writes the secrets: the vault uses Azure RBAC, so it needs a data role.
resource "azurerm_role_assignment" "deployer_secrets_officer" {
  scope                = azurerm_key_vault.responder.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_secret" "pagerduty_routing_key" {
  count = var.pagerduty_enabled ? 1 : 0

  name             = "pagerduty-routing-key"
  key_vault_id     = azurerm_key_vault.responder.id
  value_wo         = var.pagerduty_routing_key
  value_wo_version = var.secrets_version
  content_type     = "PagerDuty Events API v2 integration key"

  depends_on = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "pagerduty_api_token" {
  count = var.pagerduty_enabled ? 1 : 0

  name             = "pagerduty-api-token"
  key_vault_id     = azurerm_key_vault.responder.id
  value_wo         = var.pagerduty_api_token
  value_wo_version = var.secrets_version
  content_type     = "PagerDuty REST API key"

  depends_on = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "pagerduty_webhook_secrets" {
  count = var.pagerduty_enabled ? 1 : 0

  name             = "pagerduty-webhook-secrets"
  key_vault_id     = azurerm_key_vault.responder.id
  value_wo         = var.pagerduty_webhook_secrets
  value_wo_version = var.secrets_version
  content_type     = "PagerDuty webhook v3 signing secrets, comma-separated"

  depends_on = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "slack_bot_token" {
  count = var.slack_enabled ? 1 : 0

  name             = "slack-bot-token"
  key_vault_id     = azurerm_key_vault.responder.id
  value_wo         = var.slack_bot_token
  value_wo_version = var.secrets_version
  content_type     = "Slack bot token"

  depends_on = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "slack_signing_secret" {
  count = var.slack_enabled ? 1 : 0

  name             = "slack-signing-secret"
  key_vault_id     = azurerm_key_vault.responder.id
  value_wo         = var.slack_signing_secret
  value_wo_version = var.secrets_version
  content_type     = "Slack signing secret"

  depends_on = [azurerm_role_assignment.deployer_secrets_officer]
}

locals {
  # The app settings that point at the secrets (versionless: the newest version wins).
  secret_references = merge(
    var.pagerduty_enabled ? {
      PAGERDUTY_ROUTING_KEY     = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.pagerduty_routing_key[0].versionless_id})"
      PAGERDUTY_API_TOKEN       = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.pagerduty_api_token[0].versionless_id})"
      PAGERDUTY_WEBHOOK_SECRETS = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.pagerduty_webhook_secrets[0].versionless_id})"
    } : {},
    var.slack_enabled ? {
      SLACK_BOT_TOKEN      = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.slack_bot_token[0].versionless_id})"
      SLACK_SIGNING_SECRET = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.slack_signing_secret[0].versionless_id})"
    } : {},
  )
}
