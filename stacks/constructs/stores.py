"""How functions reach the analytics stores: the STORES env var and the matching grants."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_

from tenant_analytics import constants as c

from . import aurora, redshift
from .aurora import AuroraStore
from .lambda_runtime import FunctionNetwork
from .nag import acknowledge
from .redshift import RedshiftServerlessWarehouse

# Statement-level Data API calls the adapter makes: they accept no resource ARN, so they are limited to the
# statements the caller's own IAM identity ran (else the query function could read the writers' results).
DATA_API_STATEMENT_READS = [
    "redshift-data:DescribeStatement",
    "redshift-data:GetStatementResult",
    "redshift-data:CancelStatement",
]
OWN_STATEMENTS = {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}


def grant_secret_read(grantee: iam.IGrantable, secret_arns: list[str], key: kms.IKey) -> None:
    """Let ``grantee`` read the secrets, decrypting with ``key`` only through Secrets Manager.

    Written out instead of ``Secret.grant_read``: that also edits the key policy, which would make the key's
    stack depend on every consumer's stack.
    """
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], resources=secret_arns
        )
    )
    region = Stack.of(key).region
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        )
    )


@dataclass(frozen=True)
class AnalyticsStores:
    """The Aurora and Redshift stores as the functions see them."""

    aurora: AuroraStore
    redshift: RedshiftServerlessWarehouse
    data_key: kms.IKey
    network: FunctionNetwork

    def environment(self, stack: Stack, *, tenant_queries: bool = False) -> dict[str, str]:
        """Return the STORES env var: store id -> connection description (tokens resolved at deploy).

        With ``tenant_queries`` (the query function) no store has a secret. Aurora is reached as the query login
        with an IAM token, a member of the query role only. Redshift is reached through the Data API as the
        function's own IAM role (database user ``IAMR:<role name>``, granted the query role at deployment),
        instead of the admin user, a superuser to whom Redshift applies no RLS policy.
        """
        stores = {
            c.AURORA_STORE_ID: {
                "engine": "postgres",
                "tier": "aurora",
                "host": self.aurora.cluster.cluster_endpoint.hostname,
                "port": aurora.PORT,
                "database": c.ANALYTICS_DATABASE,
                "secret_arn": self.aurora.secret_arn,
                # the cluster imports the operational export itself, as its S3 import role
                "s3_import": "aws_s3",
                "s3_import_region": stack.region,
            },
            c.REDSHIFT_STORE_ID: {
                "engine": "redshift",
                "tier": "redshift",
                "host": self.redshift.endpoint_address,
                "port": redshift.PORT,
                "database": c.ANALYTICS_DATABASE,
                "secret_arn": self.redshift.admin_secret_arn,
                "workgroup_name": c.REDSHIFT_WORKGROUP,
            },
        }
        if tenant_queries:
            del stores[c.AURORA_STORE_ID]["secret_arn"]
            stores[c.AURORA_STORE_ID]["iam_user"] = c.QUERY_LOGIN
            del stores[c.REDSHIFT_STORE_ID]["secret_arn"]
        if self.redshift.copy_role is not None:
            stores[c.REDSHIFT_STORE_ID]["copy_role_arn"] = self.redshift.copy_role.role_arn
        return {c.ENV_STORES: stack.to_json_string(stores)}

    def grant_access(self, function: lambda_.Function, *, tenant_queries: bool = False, redshift: bool = True) -> None:
        """Let ``function`` log in to the stores as ``environment`` describes: with the admin secrets and Data API
        statements on the production workgroup; with ``tenant_queries``, no secret: an IAM token for the query login
        on Aurora and the Data API as its own IAM identity on Redshift. Without ``redshift`` (a function that writes
        Aurora only), nothing on Redshift."""
        if tenant_queries:
            self.aurora.cluster.grant_connect(function, c.QUERY_LOGIN)
        else:
            secrets = [self.aurora.secret_arn, *([self.redshift.admin_secret_policy_arn] if redshift else [])]
            grant_secret_read(function, secrets, self.data_key)
        if not redshift:
            return
        # Tenant queries run one statement at a time in a session; the writers also run batches (DDL, loads).
        run = ["redshift-data:ExecuteStatement"]
        statements = [
            iam.PolicyStatement(
                actions=run if tenant_queries else [*run, "redshift-data:BatchExecuteStatement"],
                resources=[self.redshift.workgroup_arn],
            ),
            iam.PolicyStatement(actions=DATA_API_STATEMENT_READS, resources=["*"], conditions=OWN_STATEMENTS),
        ]
        if tenant_queries:  # the Data API gets a temporary password for the function's own database user
            statements.append(
                iam.PolicyStatement(
                    actions=["redshift-serverless:GetCredentials"], resources=[self.redshift.workgroup_arn]
                )
            )
        policy = iam.Policy(function, "RedshiftDataApi", statements=statements)
        assert function.role is not None
        policy.attach_to_role(function.role)
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "Data API DescribeStatement/GetStatementResult/CancelStatement take no resource ARN; the statement is"
            " limited to statements the caller's own IAM identity ran (redshift-data:statement-owner-iam-userid).",
            findings=("Resource::*",),
        )
