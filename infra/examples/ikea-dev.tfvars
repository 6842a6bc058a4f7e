# Tenant ikea, environment dev: the responder in North Europe watches a platform in West Europe.
# Ids are examples; the secrets are not here (pass them as TF_VAR_... in phase 2, see README.md).

subscription_id  = "00000000-0000-0000-0000-000000000000"
tenant           = "ikea"
environment      = "dev"
primary_region   = "westeurope"
secondary_region = "northeurope"

service_bus_sku = "Standard"

redis_cache_ids = [
  "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-amicis-ikea-dev/providers/Microsoft.Cache/redis/redis-amicis-ikea-dev",
]

cosmosdb_account_ids = [
  "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-amicis-ikea-dev/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-amicis-ikea-dev",
]

aks_cluster_ids = [
  "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-ikea-dev/providers/Microsoft.ContainerService/managedClusters/aks-shop-ikea-dev",
]

container_registry_ids = [
  "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-acr-ikea-dev/providers/Microsoft.ContainerRegistry/registries/acrikeadevweu",
]

container_registry_source_ids = [
  "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-acr-ikea-dev-neu/providers/Microsoft.ContainerRegistry/registries/acrikeadevneu",
]

key_vault_ids = [
  "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-amicis-ikea-dev/providers/Microsoft.KeyVault/vaults/kv-amicis-ikea-dev",
]

watched_resource_group_ids = [
  "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-amicis-ikea-dev",
  "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-ikea-dev",
]

health_subscription_ids = [
  "/subscriptions/00000000-0000-0000-0000-000000000000",
]

# The source registry lives in the secondary region; its system topic would too (none here: the
# source is only read, not watched).
event_source_locations = {}

# SLACK_ALLOWED_USERS / _GROUPS: who may run /dr commands that change something (and PagerDuty's on-call).
app_settings = {
  SLACK_CHANNEL        = "C0123ABCD"
  PAGERDUTY_SERVICE_ID = "PABC123"
  PAGERDUTY_FROM_EMAIL = "oncall@example.com"
  DR_RUNBOOK_BASE_URL  = "https://runbooks.example.com/dr/runbook.md"
  SLACK_ALLOWED_USERS  = "U0123ABCD"
  SLACK_ALLOWED_GROUPS = "S0123ABCD"
  SLACK_TEAM_IDS       = "T0123ABCD"
}

# Phase 1 leaves these false; phase 2 sets them (see README.md).
deploy_event_subscriptions = false
deploy_action_group        = false
pagerduty_enabled          = false
slack_enabled              = false
