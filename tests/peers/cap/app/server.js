// Binds the CAP server to loopback only (HOST overrides): cds' own app.listen(port)
// would listen on every interface.
const cds = require('@sap/cds')
const HOST = process.env.HOST || '127.0.0.1'
cds.on('bootstrap', (app) => {
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, HOST, ...rest)
})
module.exports = cds.server
