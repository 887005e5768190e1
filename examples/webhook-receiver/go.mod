module github.com/sluice-gw/sluice/examples/webhook-receiver

go 1.26
