using omniflow.sales as db from '../db/schema';

@path: '/odata/v4/sales'
@requires: 'authenticated-user'
service SalesService {
  // Server-driven paging: 20 rows a page by default, @odata.nextLink to follow.
  @cds.query.limit: { default: 20, max: 50 }
  entity Products as projection on db.Products;

  @cds.query.limit: { default: 20, max: 50 }
  entity SalesOrders as projection on db.SalesOrders
    actions {
      action confirm() returns SalesOrders;
    };

  entity SalesOrderItems as projection on db.SalesOrderItems;
}

// Optimistic concurrency: the ETag is modifiedAt; PATCH needs If-Match.
annotate SalesService.SalesOrders with { modifiedAt @odata.etag; };
annotate SalesService.Products with { modifiedAt @odata.etag; };
