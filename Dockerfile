# The app as one replica: python:3.11-slim, the pinned requirements (no dev dependencies), torch's CPU build,
# a non-root user, and Streamlit's health check. deploy/compose.yaml runs several behind nginx.
#
#   docker build -t lora-explainer .
#   docker run -p 8501:8501 -v lora-runs:/runs lora-explainer
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LORA_DEVICE=cpu \
    LORA_RUNS_DIR=/runs

WORKDIR /app

# torch first, from PyTorch's CPU index: PyPI's Linux wheel of torch 2.13.0 is the CUDA build (gigabytes of
# CUDA libraries a CPU server never uses). The CPU wheel (2.13.0+cpu) satisfies requirements.txt's torch==2.13.0,
# so the second install keeps it and takes everything else from PyPI at the pinned versions.
COPY requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==$(sed -n 's/^torch==//p' requirements.txt)" \
 && pip install -r requirements.txt

RUN useradd --create-home --uid 10001 lora \
 && mkdir /runs && chown lora:lora /runs
COPY --chown=lora:lora . .

USER lora
# finished Real-model runs, shared by every replica that mounts the same volume (see lora_app/compute/jobs.py)
VOLUME /runs
EXPOSE 8501

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4).read() != b'ok')"]

CMD ["streamlit", "run", "app.py", "--server.headless", "true", "--server.port", "8501", \
     "--server.address", "0.0.0.0", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
