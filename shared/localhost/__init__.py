"""The local host behind `dr serve`: it plays the Azure Functions host for the registered functions.

It is the one part of `shared` that imports azure.functions, because it builds the trigger objects
(HttpRequest, ServiceBusMessage, TimerRequest) that the host would; domain code never does.
"""
