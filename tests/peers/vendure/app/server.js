// Vendure on PostgreSQL for the declared-connector tests: the Admin API at /admin-api with
// bearer tokens (a login's token comes back in the `vendure-auth-token` header), sessions
// that last SESSION_DURATION, and a catalogue populated on the first start of a database.
// PORT, DATABASE_URL (a PostgreSQL database, `postgres://USER@HOST:PORT/NAME`), POPULATE
// (`1` on a fresh database) and SESSION_DURATION (e.g. `10s`) come from the environment.
const path = require('path');
const { bootstrap, DefaultLogger, LogLevel, dummyPaymentHandler, LanguageCode } = require('@vendure/core');
const { populate } = require('@vendure/core/cli');

const config = {
  apiOptions: {
    port: Number(process.env.PORT),
    hostname: '127.0.0.1',
    adminApiPath: 'admin-api',
    shopApiPath: 'shop-api',
  },
  authOptions: {
    tokenMethod: 'bearer',
    superadminCredentials: { identifier: 'superadmin', password: 'superadmin' },
    sessionDuration: process.env.SESSION_DURATION || '1h',
    // A session read from the database is kept in memory this long (seconds).
    sessionCacheTTL: 1,
  },
  dbConnectionOptions: {
    type: 'postgres',
    url: process.env.DATABASE_URL,
    synchronize: true,
    logging: false,
  },
  paymentOptions: { paymentMethodHandlers: [dummyPaymentHandler] },
  logger: new DefaultLogger({ level: LogLevel.Warn }),
  plugins: [],
};

const initialData = {
  defaultLanguage: LanguageCode.en,
  defaultZone: 'Europe',
  taxRates: [{ name: 'Standard Tax', percentage: 20 }],
  shippingMethods: [{ name: 'Standard Shipping', price: 500 }],
  paymentMethods: [
    {
      name: 'Card',
      handler: { code: dummyPaymentHandler.code, arguments: [{ name: 'automaticSettle', value: 'false' }] },
    },
  ],
  countries: [{ name: 'United Kingdom', code: 'GB', zone: 'Europe' }],
  collections: [],
};

async function main() {
  if (process.env.POPULATE === '1') {
    const app = await populate(
      () => bootstrap({ ...config, apiOptions: { ...config.apiOptions, port: 0 } }),
      initialData,
      path.join(__dirname, 'products.csv'),
    );
    await app.close();
  }
  await bootstrap(config);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
