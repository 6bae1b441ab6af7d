"""Infrastructure tests: the synthesized CDK app, asserted offline."""
