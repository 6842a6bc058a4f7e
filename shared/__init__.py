"""DR Responder's domain, ports and adapters; nothing here imports azure.functions."""
