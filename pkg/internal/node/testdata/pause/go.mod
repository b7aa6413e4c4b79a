// The pause program, the sandbox (infra) container of every Pod the test
// node runs. Built from source here because no image can be pulled.
module kobuilt.test/node/pause

go 1.26.0
