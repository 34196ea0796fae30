#!/usr/bin/env bash
# Start Ollama, pull the experts' models in the background, then serve the workbench on 0.0.0.0.
set -euo pipefail

ollama serve >"$HOME/ollama.log" 2>&1 &
for _ in $(seq 1 60); do
  ollama list >/dev/null 2>&1 && break
  sleep 1
done

# The app starts at once; its status line shows each model as "not pulled" until the pull ends.
(for model in $EXPERT_MODELS; do ollama pull "$model" || echo "could not pull $model" >&2; done) &

exec python app.py app.host=0.0.0.0 "app.port=${PORT:-7860}" "ollama.host=http://$OLLAMA_HOST" "$@"
