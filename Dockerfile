FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY smol smol
COPY workflows workflows
COPY activities activities
COPY api api
COPY schema schema
COPY worker.py .
RUN pip install --no-cache-dir -e .
EXPOSE 8000
CMD ["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8000"]
