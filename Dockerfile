# One image for every ampmq service; the compose file picks the service with the command.
FROM python:3.11-slim
WORKDIR /app
# The dependencies first, from pyproject.toml alone: this layer survives every change to the code.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && useradd --system --uid 1000 ampmq \
 && mkdir /acl && chown ampmq /acl
# Then the code (no demo extras: no embedded broker, no dashboard).
COPY README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir --no-deps .
USER ampmq
ENTRYPOINT ["ampmq"]
CMD ["run"]
