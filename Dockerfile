# One image for api, workers and companion; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# torch first and pinned (from PyPI this is the CUDA build on x86_64; point pip at the PyTorch CPU index for a
# smaller CPU-only image).
RUN pip install torch==2.13.0
COPY pyproject.toml README.md ./
COPY service service
COPY workers workers
COPY models models
COPY common common
COPY companion companion
COPY training training
COPY policies policies
COPY scripts scripts
RUN pip install -e . flower==2.2.0
# Build/fetch the default models into the image so containers start offline.
RUN python -m scripts.prepare --data-dir /app/var
EXPOSE 8000 8001
CMD ["python", "-m", "uvicorn", "--factory", "service.gateway.app:create_app", "--host", "0.0.0.0", "--port", "8000"]
