# One image for every ampmq service; the compose file picks the service with the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 1000 ampmq
USER ampmq
ENTRYPOINT ["ampmq"]
CMD ["run"]
