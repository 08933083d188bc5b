#!/bin/sh
# Rolls the checkout service back to its previous revision on one cluster.
# Usage: rollback.sh --context CTX
set -eu
[ "${1:-}" = --context ] || { echo "usage: rollback.sh --context CTX" >&2; exit 2; }
kubectl --context "$2" -n checkout rollout undo deployment/checkout
