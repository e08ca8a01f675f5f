FROM debian:bookworm
COPY . /ctx/
