module github.com/deepgo/deepgo

go 1.26
