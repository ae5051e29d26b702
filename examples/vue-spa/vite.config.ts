import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

// `npm run dev` serves the app on :5173 and proxies the API to the example app on :3000
// (`cargo run -p embed-axum`). The Host header is kept so that sekisho's Origin check sees the
// page's own origin.
export default defineConfig({
  plugins: [vue()],
  resolve: {
    // @sekisho/client is linked from clients/js: make its `vue` import resolve to this app's copy.
    dedupe: ['vue'],
  },
  server: {
    proxy: {
      '/api': { target: 'http://127.0.0.1:3000', changeOrigin: false },
    },
  },
  build: {
    target: 'es2020',
  },
});
