# Hugging Face Docker Space: Ollama as a sidecar in the same container, the workbench on port 7860.
FROM ollama/ollama:0.6.8

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*

# Spaces run the container as user 1000 with a writable home.
RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/app/.venv/bin:/usr/local/bin:/usr/bin:/bin \
    OLLAMA_HOST=127.0.0.1:11434 \
    OLLAMA_MODELS=/home/user/.ollama/models \
    LLM_ROUTER_CACHE=/home/user/.cache/llm-router \
    EXPERT_MODELS="llama3.2:3b tinyllama" \
    WORKBENCH_PUBLIC_DEMO=true \
    FORWARDED_ALLOW_IPS="*"
# A public demo: anonymous visitors chat, compare and vote; set the Space secrets WORKBENCH_USERS
# (and WORKBENCH_API_KEYS) for the team, who sign in at /team/. See README "Running it in public".
WORKDIR /home/user/app

COPY --chown=user pyproject.toml README.md ./
COPY --chown=user router ./router
COPY --chown=user forensics ./forensics
COPY --chown=user ui ./ui
COPY --chown=user conf ./conf
COPY --chown=user corpus ./corpus
COPY --chown=user app.py ./
COPY --chown=user scripts ./scripts
# CPU-only torch (the GPU build is several GB and a Space's free tier has no GPU).
RUN python3 -m venv .venv \
 && pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -e . \
 && python -c "from router.encoders import OnnxEncoder; OnnxEncoder()" \
 && python -m router train

EXPOSE 7860
ENTRYPOINT []
CMD ["bash", "scripts/start-space.sh"]
