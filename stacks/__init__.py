"""CDK stacks of the tenant analytics platform: one module per stack, reusable pieces in ``constructs``."""
