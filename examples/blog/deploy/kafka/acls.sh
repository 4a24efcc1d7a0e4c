#!/usr/bin/env bash
# Kafka ACLs for the nodes of app blog (placements/microservices.yaml), one principal per node.
# Written by molgen from the app's call graph and the placement; after either
# changes, write it again ('molgen acls -placement FILE' prints it).
#
# Each node's principal may do what its code does through Kafka, and no more:
#   - Write, Describe, DescribeConfigs, Create on the request topic of each
#     service it calls over Kafka (from a service it hosts or a main placed
#     on it; with prefer_local on, a call to a service on the same node is
#     direct and needs none), and Describe on that service's consumer group
#     (a caller fails fast with ErrNoInstance when the group has no members);
#   - Read, Describe, DescribeConfigs, Create on the request topic of each
#     service it hosts, and Read, Describe on its consumer group;
#   - on its own reply topics (prefix molgen.blog.reply.NODE.): Read, Write,
#     Create, Delete, Describe, DescribeConfigs (each instance creates its
#     own, writes heartbeats to it, reads its replies and deletes it when it
#     stops);
#   - Write, Describe, DescribeConfigs on every reply topic of the app (prefix
#     molgen.blog.reply.) only if it hosts a service: servers answer callers
#     on any node;
#   - IdempotentWrite on the cluster (the producer is idempotent).
# So a node cannot send requests to a service it does not call, read the
# requests of a service it does not host, or, unless it serves, write into
# another node's reply topics. The broker needs an authorizer and
# allow.everyone.if.no.acl.found=false for any of this to hold.
#
# Usage:
#   KAFKA_BOOTSTRAP=broker:9096 KAFKA_ADMIN_CONFIG=admin.properties ./acls.sh
# KAFKA_ADMIN_CONFIG is a client properties file of a user who may create
# ACLs (security.protocol, sasl.*, ssl.*); KAFKA_ACLS is the ACL tool
# (default kafka-acls.sh; split into words, e.g. "scripts/kafka/kafka.sh acls").
# Adding an ACL that exists changes nothing, so the script may run again. It
# never removes one: remove what an earlier placement needed with
# kafka-acls.sh --remove.
set -euo pipefail

: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP to the brokers (host:port,...)}"
: "${KAFKA_ADMIN_CONFIG:?set KAFKA_ADMIN_CONFIG to the admin client properties file}"
read -r -a kafka_acls <<<"${KAFKA_ACLS:-kafka-acls.sh}"

add() {
	"${kafka_acls[@]}" --bootstrap-server "${KAFKA_BOOTSTRAP:?}" --command-config "${KAFKA_ADMIN_CONFIG:?}" --add "$@" >/dev/null
}

# node users: services users; mains none; calls over Kafka none
echo "acls.sh: User:molgen-blog-users (node users)" >&2
add --allow-principal 'User:molgen-blog-users' --cluster --operation IdempotentWrite # an idempotent producer
add --allow-principal 'User:molgen-blog-users' --topic 'molgen.blog.reply.' --resource-pattern-type prefixed --operation Write --operation Describe --operation DescribeConfigs # answers callers on every node
add --allow-principal 'User:molgen-blog-users' --topic 'molgen.blog.reply.users.' --resource-pattern-type prefixed --operation Read --operation Write --operation Create --operation Delete --operation Describe --operation DescribeConfigs # the reply topics of its instances
add --allow-principal 'User:molgen-blog-users' --topic 'molgen.blog.req.users' --resource-pattern-type literal --operation Read --operation Create --operation Describe --operation DescribeConfigs # hosts users
add --allow-principal 'User:molgen-blog-users' --group 'molgen.blog.users' --resource-pattern-type literal --operation Read --operation Describe # hosts users

# node posts: services posts; mains none; calls over Kafka users
echo "acls.sh: User:molgen-blog-posts (node posts)" >&2
add --allow-principal 'User:molgen-blog-posts' --cluster --operation IdempotentWrite # an idempotent producer
add --allow-principal 'User:molgen-blog-posts' --topic 'molgen.blog.reply.' --resource-pattern-type prefixed --operation Write --operation Describe --operation DescribeConfigs # answers callers on every node
add --allow-principal 'User:molgen-blog-posts' --topic 'molgen.blog.reply.posts.' --resource-pattern-type prefixed --operation Read --operation Write --operation Create --operation Delete --operation Describe --operation DescribeConfigs # the reply topics of its instances
add --allow-principal 'User:molgen-blog-posts' --topic 'molgen.blog.req.posts' --resource-pattern-type literal --operation Read --operation Create --operation Describe --operation DescribeConfigs # hosts posts
add --allow-principal 'User:molgen-blog-posts' --topic 'molgen.blog.req.users' --resource-pattern-type literal --operation Write --operation Create --operation Describe --operation DescribeConfigs # calls users
add --allow-principal 'User:molgen-blog-posts' --group 'molgen.blog.posts' --resource-pattern-type literal --operation Read --operation Describe # hosts posts
add --allow-principal 'User:molgen-blog-posts' --group 'molgen.blog.users' --resource-pattern-type literal --operation Describe # calls users

# node gateway: services none; mains gateway; calls over Kafka posts, users
echo "acls.sh: User:molgen-blog-gateway (node gateway)" >&2
add --allow-principal 'User:molgen-blog-gateway' --cluster --operation IdempotentWrite # an idempotent producer
add --allow-principal 'User:molgen-blog-gateway' --topic 'molgen.blog.reply.gateway.' --resource-pattern-type prefixed --operation Read --operation Write --operation Create --operation Delete --operation Describe --operation DescribeConfigs # the reply topics of its instances
add --allow-principal 'User:molgen-blog-gateway' --topic 'molgen.blog.req.posts' --resource-pattern-type literal --operation Write --operation Create --operation Describe --operation DescribeConfigs # calls posts
add --allow-principal 'User:molgen-blog-gateway' --topic 'molgen.blog.req.users' --resource-pattern-type literal --operation Write --operation Create --operation Describe --operation DescribeConfigs # calls users
add --allow-principal 'User:molgen-blog-gateway' --group 'molgen.blog.posts' --resource-pattern-type literal --operation Describe # calls posts
add --allow-principal 'User:molgen-blog-gateway' --group 'molgen.blog.users' --resource-pattern-type literal --operation Describe # calls users

# node demo: services none; mains demo; calls over Kafka posts, users
echo "acls.sh: User:molgen-blog-demo (node demo)" >&2
add --allow-principal 'User:molgen-blog-demo' --cluster --operation IdempotentWrite # an idempotent producer
add --allow-principal 'User:molgen-blog-demo' --topic 'molgen.blog.reply.demo.' --resource-pattern-type prefixed --operation Read --operation Write --operation Create --operation Delete --operation Describe --operation DescribeConfigs # the reply topics of its instances
add --allow-principal 'User:molgen-blog-demo' --topic 'molgen.blog.req.posts' --resource-pattern-type literal --operation Write --operation Create --operation Describe --operation DescribeConfigs # calls posts
add --allow-principal 'User:molgen-blog-demo' --topic 'molgen.blog.req.users' --resource-pattern-type literal --operation Write --operation Create --operation Describe --operation DescribeConfigs # calls users
add --allow-principal 'User:molgen-blog-demo' --group 'molgen.blog.posts' --resource-pattern-type literal --operation Describe # calls posts
add --allow-principal 'User:molgen-blog-demo' --group 'molgen.blog.users' --resource-pattern-type literal --operation Describe # calls users
