# Terraform and the providers, pinned to one major each. No backend here: pass yours with
# `terraform init -backend-config=...` (the state holds the function key the action group calls with).
terraform {
  # Write-only arguments (the Key Vault secrets' value_wo) and ephemeral variables need 1.11.
  required_version = ">= 1.11"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 5.2"
    }
    # Only for what azurerm cannot do without shared keys or at all: tables over ARM and the
    # Function App's Key Vault reference identity (see storage.tf and functionapp.tf).
    azapi = {
      source  = "Azure/azapi"
      version = "~> 2.12"
    }
  }
}

provider "azurerm" {
  subscription_id = var.subscription_id
  # The storage account refuses shared keys: the provider talks to blob containers with Entra ID.
  storage_use_azuread = true
  # azurerm 5 registers no resource providers by default; these are the ones this config uses.
  resource_providers_to_register = [
    "Microsoft.App",
    "Microsoft.EventGrid",
    "Microsoft.Insights",
    "Microsoft.KeyVault",
    "Microsoft.ManagedIdentity",
    "Microsoft.OperationalInsights",
    "Microsoft.ServiceBus",
    "Microsoft.Storage",
    "Microsoft.Web",
  ]

  features {
    key_vault {
      # Purge protection is on; a destroy must never try to purge the responder's secrets.
      purge_soft_delete_on_destroy          = false
      purge_soft_deleted_secrets_on_destroy = false
    }
    storage {
      # With shared keys off, reading blob/queue data-plane properties would need data roles for
      # whoever runs Terraform; nothing here sets them.
      data_plane_available = false
    }
  }
}

provider "azapi" {
  subscription_id = var.subscription_id
}
