"""Pure decisions: the policy file, severity rules and correlation."""
