// Server-side rules of the sales-order service: item prices default to the product's,
// the order total is computed, and confirm reserves stock all-or-nothing.
const cds = require('@sap/cds')

module.exports = class SalesService extends cds.ApplicationService {
  init() {
    const { SalesOrders, SalesOrderItems, Products } = this.entities

    this.before(['CREATE', 'UPDATE'], SalesOrders, async (req) => {
      const items = req.data.items
      if (!Array.isArray(items)) return
      let total = 0
      for (const item of items) {
        const id = item.product_ID ?? item.product?.ID
        if (!id) continue
        const product = await SELECT.one.from(Products, id).columns('price')
        if (!product) return req.error(400, `Product ${id} not found`, 'items/product_ID')
        if (item.price == null) item.price = product.price
        total += Number(item.price) * Number(item.quantity || 0)
      }
      req.data.total = total.toFixed(2)
    })

    this.on('confirm', SalesOrders, async (req) => {
      const ID = req.params[0]?.ID ?? req.params[0]
      const order = await SELECT.one.from(SalesOrders, ID).columns('ID', 'status')
      if (!order) return req.reject(404, `Order ${ID} not found`)
      if (order.status !== 'NEW') return req.reject(409, `Order ${ID} is ${order.status}`)
      const items = await SELECT.from(SalesOrderItems).where({ parent_ID: ID })
      for (const item of items) {
        const changed = await UPDATE(Products, item.product_ID)
          .with({ stock: { '-=': item.quantity } })
          .where({ stock: { '>=': item.quantity } })
        if (!changed) return req.reject(409, `Insufficient stock for product ${item.product_ID}`)
      }
      await UPDATE(SalesOrders, ID).with({ status: 'CONFIRMED' })
      return SELECT.one.from(SalesOrders, ID)
    })

    return super.init()
  }
}
