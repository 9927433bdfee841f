#!/bin/bash
# A bash loop over checkpoint/restart cycles: `for i in $(seq ...)`, arithmetic, an array and
# a running checksum. Prints "tick N SUM" and, at the end, "total SUM LEN" and "done".
# Usage: cov_loop.sh LIMIT
limit=${1:-1000}
sum=0
declare -a seen=()
for i in $(seq 1 "$limit"); do
  sum=$(( (sum * 31 + i * i) % 1000000007 ))
  seen+=("$i")
  if (( ${#seen[@]} != i )); then echo "FAIL tick $i: array length ${#seen[@]}"; exit 3; fi
  echo "tick $i $sum"
  # Pause without forking (an external sleep would be a second checkpointed process).
  for ((j = 0; j < 3000; j++)); do :; done
done
echo "total $sum ${#seen[@]}"
echo done
