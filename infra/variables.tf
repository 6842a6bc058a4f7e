# What differs between deployments. infra/examples/ikea-dev.tfvars fills these for one tenant.

variable "subscription_id" {
  description = "The subscription the responder is deployed into."
  type        = string
}

variable "tenant" {
  description = "Short name of the tenant this responder serves (lowercase letters and digits), used in resource names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.tenant))
    error_message = "tenant must be 2-10 lowercase letters or digits, starting with a letter (it goes into storage and vault names)."
  }
}

variable "environment" {
  description = "Environment name (dev, test, prod, ...), used in resource names and tags."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,5}$", var.environment))
    error_message = "environment must be 2-6 lowercase letters or digits, starting with a letter."
  }
}

variable "primary_region" {
  description = "Where the platform the responder watches runs; the default region of its event sources."
  type        = string
}

variable "secondary_region" {
  description = "Where the responder runs: away from what it rescues."
  type        = string

  validation {
    condition     = var.secondary_region != var.primary_region
    error_message = "secondary_region must differ from primary_region: the responder must survive the region it rescues."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

# ---- The Function App -------------------------------------------------------------------

variable "maximum_instance_count" {
  description = "Flex Consumption scale-out limit (1-1000). Kept low: a storm collapses into incidents, not instances."
  type        = number
  default     = 40
}

variable "instance_memory_mb" {
  description = "Flex Consumption instance memory: 512, 2048 or 4096."
  type        = number
  default     = 2048

  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb must be 512, 2048 or 4096."
  }
}

variable "always_ready_http" {
  description = "Always-ready instances for the HTTP group, so an alert storm never waits on a cold start (0 = scale from zero)."
  type        = number
  default     = 1
}

variable "zone_redundant" {
  description = "Spread the Flex instances over availability zones; false only in a secondary region without zones."
  type        = bool
  default     = true
}

variable "app_settings" {
  description = "Extra, non-secret app settings (DR_POLICY_FILE, SLACK_CHANNEL, PAGERDUTY_SERVICE_ID, ...). Secrets go to Key Vault instead."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Log Analytics retention."
  type        = number
  default     = 30
}

# ---- Service Bus ------------------------------------------------------------------------

variable "service_bus_sku" {
  description = "Standard, or Premium for isolation, availability zones and geo-disaster recovery."
  type        = string
  default     = "Standard"

  validation {
    condition     = contains(["Standard", "Premium"], var.service_bus_sku)
    error_message = "service_bus_sku must be Standard or Premium (sessions and duplicate detection need at least Standard)."
  }
}

variable "service_bus_premium_capacity" {
  description = "Messaging units when service_bus_sku is Premium."
  type        = number
  default     = 1
}

variable "queue_lock_duration" {
  description = "Peek-lock duration of every queue (ISO 8601, at most PT5M). The host renews it up to maxAutoLockRenewalDuration."
  type        = string
  default     = "PT1M"
}

variable "queue_max_delivery_count" {
  description = "Deliveries before a message is dead-lettered (the app's DR_QUEUE_MAX_DELIVERY_COUNT says the same)."
  type        = number
  default     = 10
}

variable "duplicate_detection_window" {
  description = "How long a message id is remembered, so a resend of the same effect is dropped (ISO 8601)."
  type        = string
  default     = "PT1H"
}

# ---- Tables -----------------------------------------------------------------------------

variable "tables" {
  description = "The table of the responder's store (DR_TABLES_TABLE; one table holds everything, see shared/adapters/azure_tables.md), created over ARM (the account takes no shared keys)."
  type        = set(string)
  default     = ["drresponder"]

  validation {
    condition     = alltrue([for t in var.tables : can(regex("^[A-Za-z][A-Za-z0-9]{2,62}$", t))])
    error_message = "Table names are 3-63 letters or digits, starting with a letter."
  }
}

# ---- What the responder watches and acts on (ARM resource ids) ---------------------------

variable "redis_cache_ids" {
  description = "Azure Cache for Redis caches: redis.failover acts on them (Redis Cache Contributor), their events come in."
  type        = list(string)
  default     = []
}

variable "cosmosdb_account_ids" {
  description = "Cosmos DB accounts: cosmosdb.failover / failback act on them (Cosmos DB Operator)."
  type        = list(string)
  default     = []
}

variable "aks_cluster_ids" {
  description = "AKS clusters: kubernetes.* and velero.restore reach them (Cluster User Role), their events come in."
  type        = list(string)
  default     = []
}

variable "container_registry_ids" {
  description = "Registries acr.import imports into (a custom role: read + importImage), their events come in."
  type        = list(string)
  default     = []
}

variable "container_registry_source_ids" {
  description = "Registries acr.import copies from, usually the geo peers (a custom role: read + pull)."
  type        = list(string)
  default     = []
}

variable "key_vault_ids" {
  description = "Key Vaults keyvault.recover_secret recovers secrets in (Key Vault Secrets Officer), their events come in."
  type        = list(string)
  default     = []
}

variable "watched_resource_group_ids" {
  description = "Resource groups whose resource deletions and failed writes come in as events (no role: read-only signals)."
  type        = list(string)
  default     = []
}

variable "health_subscription_ids" {
  description = "Subscriptions whose Resource Health annotations come in (Microsoft.ResourceNotifications.HealthResources), as /subscriptions/<id>."
  type        = list(string)
  default     = []
}

variable "event_source_locations" {
  description = "Region of an event source by resource id, where it is not primary_region (a system topic lives in its source's region)."
  type        = map(string)
  default     = {}
}

variable "resource_group_event_types" {
  description = "Event types taken from resource group topics: every write in a group is an event, so only these come in."
  type        = list(string)
  default = [
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.Resources.ResourceDeleteFailure",
    "Microsoft.Resources.ResourceWriteFailure",
    "Microsoft.Resources.ResourceActionFailure",
  ]
}

# ---- Two-phase apply --------------------------------------------------------------------

variable "deploy_event_subscriptions" {
  description = "Phase 2: subscribe the Event Grid trigger. Creating a subscription fails until the function is published, so the first apply leaves this false."
  type        = bool
  default     = false
}

variable "deploy_action_group" {
  description = "Phase 2: the action group that posts Azure Monitor alerts to /api/alerts. Its URL carries the function key, which exists once the app runs."
  type        = bool
  default     = false
}

variable "alerts_function_key" {
  description = "The key the action group calls /api/alerts with. Null: the app's default function key, read from Azure after phase 1."
  type        = string
  default     = null
  sensitive   = true
}

# ---- Secrets (write-only: Terraform sends them to Key Vault and never stores them) -------

variable "pagerduty_enabled" {
  description = "Create the PagerDuty secrets and point the app settings at them. False: pages are dry-run."
  type        = bool
  default     = false
}

variable "slack_enabled" {
  description = "Create the Slack secrets and point the app settings at them. False: cards are dry-run."
  type        = bool
  default     = false
}

variable "secrets_version" {
  description = "Raise by one to send new secret values (write-only values are only sent when this changes)."
  type        = number
  default     = 1
}

variable "pagerduty_routing_key" {
  description = "PagerDuty Events API v2 integration key."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "pagerduty_api_token" {
  description = "PagerDuty REST API key (notes, on-call lookups)."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "pagerduty_webhook_secrets" {
  description = "PagerDuty webhook v3 signing secret(s), comma-separated during a rotation."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "slack_bot_token" {
  description = "Slack bot token (xoxb-...)."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "slack_signing_secret" {
  description = "Slack app signing secret (slash commands and buttons)."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}
